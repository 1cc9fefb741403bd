"""Schemas of the human-editable knowledge files under ``knowledge/`` (pydantic v1, as Rasa 3.6 pins it)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Dict, List, Optional, Union

from pydantic import BaseModel, Field, conint, constr, validator

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class Strict(BaseModel):
    class Config:
        extra = "forbid"
        anystr_strip_whitespace = True


class HumanService(Strict):
    start: constr(regex=HHMM)
    end: constr(regex=r"^([01]\d|2[0-4]):[0-5]\d$")


class Cinema(Strict):
    name: str
    address: str
    directions: str
    opening_hours: str
    first_show: constr(regex=HHMM)
    last_show_start: constr(regex=HHMM)
    hotline: constr(regex=r"^[\d-]{7,20}$")
    hotline_hours: str
    online_bot_hours: str
    human_service: HumanService
    duty_manager: str
    timezone: str


class HallTypeDoc(Strict):
    code: constr(regex=r"^[a-z0-9_]+$")
    name: str
    aliases: List[constr(min_length=1)]
    description: str
    price_key: constr(regex=r"^[a-z0-9_]+$")


class HallDoc(Strict):
    number: conint(ge=1, le=99)
    name: str
    type: str
    seats: conint(ge=1, le=5000)
    wheelchair_seats: conint(ge=0) = 0
    notes: str = ""


class Halls(Strict):
    hall_types: List[HallTypeDoc]
    halls: List[HallDoc]
    notes: List[str] = []


class FilmDoc(Strict):
    title: constr(min_length=1, max_length=60)
    aliases: List[constr(min_length=1)] = []
    genre: str
    runtime_min: conint(ge=30, le=400)
    advisory: str
    formats: List[constr(regex=r"^[a-z0-9_]+(:[23]D)?$")]
    synopsis: constr(min_length=5)
    director: str
    cast: List[str]
    language: str = "国语"
    release_date: dt.date


class Films(Strict):
    films: List[FilmDoc]


class PriceRow(Strict):
    key: constr(regex=r"^[a-z0-9_]+$")
    label: str
    weekday: conint(ge=0, le=10000)
    weekend: conint(ge=0, le=10000)


class EarlyShow(Strict):
    before: constr(regex=HHMM)
    amount: conint(ge=0, le=1000)
    exclude_hall_types: List[str] = []
    text: str


class TicketTypeDoc(Strict):
    code: constr(regex=r"^[a-z_]+$")
    name: str
    aliases: List[str]
    rate: float = Field(..., gt=0, le=1)
    weekdays_only: List[str] = []
    exclude_holidays: bool = False
    free_price_keys: List[str] = []
    text: str

    @validator("weekdays_only", each_item=True)
    def _weekday(cls, v: str) -> str:
        if v not in WEEKDAYS:
            raise ValueError(f"weekday must be one of {WEEKDAYS}")
        return v


class Prices(Strict):
    weekend_days: List[str]
    holidays: List[dt.date] = []
    base: List[PriceRow]
    early_show: EarlyShow
    ticket_types: List[TicketTypeDoc]
    no_stacking: str
    special_screenings: str

    @validator("weekend_days", each_item=True)
    def _weekday(cls, v: str) -> str:
        if v not in WEEKDAYS:
            raise ValueError(f"weekday must be one of {WEEKDAYS}")
        return v


class RefundWindow(Strict):
    min_minutes_before: int
    refundable: bool
    changeable: bool
    fee_rate: float = Field(..., ge=0, le=1)
    min_fee: float = Field(..., ge=0)
    text: str


class SpecialTickets(Strict):
    kinds: List[str]
    change_min_minutes_before: int
    text: str


class ThirdParty(Strict):
    platforms: List[str]
    text: str


class Refund(Strict):
    windows: List[RefundWindow]
    special_tickets: SpecialTickets
    third_party: ThirdParty
    own_channels: str
    arrival: str
    cinema_fault: str

    @validator("windows")
    def _ordered(cls, v: List[RefundWindow]) -> List[RefundWindow]:
        marks = [w.min_minutes_before for w in v]
        if marks != sorted(marks, reverse=True):
            raise ValueError("windows must be ordered by min_minutes_before, largest first")
        return v


class FreeHours(Strict):
    default: conint(ge=0, le=24)
    hall_types: Dict[str, conint(ge=0, le=24)] = {}
    member_levels: Dict[str, conint(ge=0, le=24)] = {}


class Parking(Strict):
    location: str
    fee_per_hour: float = Field(..., ge=0)
    daily_cap: float = Field(..., ge=0)
    free_hours: FreeHours
    registration: str
    beyond: str
    height_limit: str
    chargers: str
    hours: str


class Level(Strict):
    code: constr(regex=r"^[a-z_]+$")
    name: str
    aliases: List[str]
    threshold: conint(ge=0)
    discount: Optional[float] = Field(None, gt=0, le=1)
    points_multiplier: float = Field(..., gt=0)
    perks: List[str]


class Points(Strict):
    earn: str
    expiry: str
    where: str
    query: str


class ExchangeItem(Strict):
    points: conint(gt=0)
    item: str


class Membership(Strict):
    signup: str
    upgrade: str
    levels: List[Level]
    points: Points
    exchange: List[ExchangeItem]
    birthday: str


class Topic(Strict):
    key: constr(regex=r"^[a-z_0-9]+$")
    name: str
    aliases: List[str]
    answer: str


class Facilities(Strict):
    facilities: List[Topic]


class ViewingRules(Strict):
    rules: List[Topic]


class Group(Strict):
    min_people: conint(ge=1)
    discount: float = Field(..., gt=0, le=1)
    advance_days: conint(ge=0)
    text: str


class PrivateScreening(Strict):
    hall_types: List[str]
    advance_days: conint(ge=0)
    text: str


class Services(Strict):
    group: Group
    private_screening: PrivateScreening
    registration: str
    callback: str
    callback_working_days: conint(ge=0)
    vip_booking: str


class OrderIdFormat(Strict):
    prefix: constr(regex=r"^[A-Z]+$")
    digits: conint(ge=4, le=30)
    example: str
    text: str


class OrderProblem(Topic):
    checked: Optional[str] = None  # said once the patron has checked what ``answer`` asks to check first


class Orders(Strict):
    order_id: OrderIdFormat
    problems: List[OrderProblem]


class LostFound(Strict):
    register_: str = Field(..., alias="register")
    staff: str
    keep_days: conint(ge=1)
    keep: str
    claim: str


class Category(Strict):
    code: str
    keywords: List[str]
    onsite: bool
    handling: str
    remedy: str
    # whether the hall and showing are asked even when the patron already left a phone (a hotline or an
    # order complaint has no hall to ask about)
    where_needed: bool = True
    # said once the patron names where it happens (「1号厅」): who is on the way there; {where} is the place
    dispatched: Optional[str] = None
    # an on-site category told afterwards (「昨晚的电影声音太小了」): nobody to send now, the reply time instead
    handling_later: Optional[str] = None


class Anger(Strict):
    keywords: List[str]
    threats: List[str]
    # half a sign each (「为什么」「不是说」): two, or one with a 「！」, make a message angry
    reproaches: List[str] = []


class Escalation(Strict):
    human_online: str
    human_next: str  # nobody ahead: never 「您前面还有0位」
    human_offline: str
    timeout: str
    handback: str
    human_no_agent: Optional[str] = None  # inside service hours, but no agent online
    agent_joined: Optional[str] = None  # an agent took the conversation ({agent}: display name)
    agent_prefix: Optional[str] = None  # before an agent's message where only text shows (WeChat)
    # the database is unreachable: the request is kept, the number comes later ({ref}, {due}, {start}, {end})
    human_queued: Optional[str] = None
    # asked when people answer (「人工几点上班」): after the hours, how to reach one
    offer: Optional[str] = None


class Satisfaction(Strict):
    """The rating asked at the end of a conversation; ``choices`` are the scores 1..5 in order."""
    prompt: str
    choices: List[str] = Field(..., min_items=5, max_items=5)
    thanks: str
    thanks_low: str  # {ticket}: the follow-up ticket a low rating opens
    comment_thanks: str
    skipped: str = ""  # the patron declined to comment
    skip_words: List[str] = []
    low_at_most: conint(ge=1, le=4) = 2
    idle_minutes: conint(ge=1, le=240) = 10  # asked after this long without a patron message


class Followup(Strict):
    """回访: the outcome of a resolved ticket told in the patron's channel ({ticket}, {resolution})."""
    resolved: str
    call_note: str  # the follow-up task a ticket keeps when the channel cannot carry the message
    # a ticket kept during an outage is stored: its number told in the channel ({ref}, {ticket}, {due})
    stored: Optional[str] = None
    stored_told: Optional[str] = None  # the ticket's note when that was sent
    stored_call: Optional[str] = None  # the ticket's note when the channel could not carry it


class Emergency(Strict):
    first_reply: str
    follow_up: str  # a message while the conversation is in emergency mode ({ticket}, {hotline})
    cues: List[constr(min_length=2)] = []  # words that make a message an emergency
    rule_words: List[constr(min_length=1)] = []  # words of rule questions that only sound alarming


class Complaints(Strict):
    empathy: List[constr(min_length=2)]
    apology_after: str
    ask_facts: str
    forbidden_phrases: List[str]
    categories: List[Category]
    anger: Anger
    escalation: Escalation
    sla_minutes: Dict[str, Union[conint(ge=1), constr(regex=r"^working_day$")]]
    emergency: Emergency
    satisfaction: Optional[Satisfaction] = None
    followup: Optional[Followup] = None
    # 「停车费你们也得给我报了」 said when the phone is asked: the wish is noted, then the phone asked again
    wish_noted: Optional[str] = None
    # 「快点啊电影都开始了」 during a complaint: staff are hurried
    hurry: Optional[str] = None
    # 「买的还是套餐，吃了两口就扔了」 when the showing or phone was asked: more of the story, noted with an apology
    noted: Optional[str] = None


# showtimes.csv as spreadsheets write it: Chinese headers, 2026/12/3, 9:30, 周五, 2d
SHOWTIME_HEADER_ALIASES = {"日期": "day", "开场时间": "start", "开场": "start", "时间": "start", "影片": "film",
                           "片名": "film", "厅号": "hall", "影厅": "hall", "版本": "version"}
_DAY_WORDS = {"每天": "daily", "每日": "daily", **{f"{p}{d}": code for p in ("周", "星期")
              for d, code in zip("一二三四五六日", WEEKDAYS)}, "周天": "sun", "星期天": "sun"}


def normalise_showtime(column: str, value: str) -> str:
    """A cell of showtimes.csv in the file's own spelling (YYYY-MM-DD, HH:MM, 2D); unknown spellings are
    returned as given, for the validator to report."""
    v = (value or "").strip()
    if column == "day":
        v = _DAY_WORDS.get(v, v.lower() if v.lower() in (*WEEKDAYS, "daily") else v)
        m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", v)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
            except ValueError:
                return v
        return v
    if column == "start":
        m = re.fullmatch(r"(\d{1,2})[:：](\d{2})(:00)?", v)
        return f"{int(m[1]):02d}:{m[2]}" if m else v
    if column == "version":
        return v.upper()
    if column == "hall":
        m = re.fullmatch(r"(\d+)\s*(号厅|号|厅)?", v)
        return m[1] if m else v
    return v


class ShowtimeRow(Strict):
    day: str
    start: constr(regex=HHMM)
    film: constr(min_length=1)
    hall: conint(ge=1)
    version: constr(regex=r"^[23]D$") = "2D"

    @validator("day", "start", "hall", "version", pre=True)
    def _spelling(cls, v, field):
        return normalise_showtime(field.name, v) if isinstance(v, str) else v

    @validator("day")
    def _day(cls, v: str) -> str:
        if v == "daily" or v in WEEKDAYS:
            return v
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            dt.date.fromisoformat(v)  # raises ValueError on 2026-02-30
            return v
        raise ValueError("day must be daily, mon..sun or a date YYYY-MM-DD")


class LexiconEntry(Strict):
    to: constr(min_length=1, max_length=12)
    variants: List[constr(min_length=1, max_length=12)] = Field(..., min_items=1)
    kind: str = ""

    @validator("variants", each_item=True)
    def _not_a_number(cls, v: str) -> str:
        if re.fullmatch(r"[\d\s]+", v):
            raise ValueError(f"variant {v!r} is only digits: it would change phone numbers and prices")
        return v


QUESTION_TOPICS = ("showtimes", "film_info", "hall_types", "ticket_price", "refund_policy", "parking", "member_points",
                   "member_benefits", "facilities", "viewing_rules", "cinema_info", "vip_service", "order_problem",
                   "group_booking", "lost_found")


class QuestionDoc(Strict):
    key: constr(regex=r"^[a-z0-9_]+$")
    topic: str
    examples: List[constr(min_length=2, max_length=80)] = Field(..., min_items=2)
    answer: constr(min_length=2, max_length=600)

    @validator("topic")
    def _topic(cls, v: str) -> str:
        if v not in QUESTION_TOPICS:
            raise ValueError(f"unknown topic {v!r} (one of {', '.join(QUESTION_TOPICS)})")
        return v


class Questions(Strict):
    questions: List[QuestionDoc]
    # words that mean the same in a question (咋→怎么, 超了→超出), folded by the matcher only
    synonyms: List[LexiconEntry] = []


class Lexicon(Strict):
    entries: List[LexiconEntry]


# file name -> schema; showtimes.csv rows use ShowtimeRow
YAML_FILES = {
    "cinema.yml": Cinema,
    "halls.yml": Halls,
    "films.yml": Films,
    "prices.yml": Prices,
    "refund.yml": Refund,
    "parking.yml": Parking,
    "membership.yml": Membership,
    "facilities.yml": Facilities,
    "viewing_rules.yml": ViewingRules,
    "services.yml": Services,
    "orders.yml": Orders,
    "lost_found.yml": LostFound,
    "complaints.yml": Complaints,
    "lexicon.yml": Lexicon,
    "questions.yml": Questions,
}
CSV_FILES = {"showtimes.csv": ShowtimeRow}
ALL_FILES = [*YAML_FILES, *CSV_FILES]
