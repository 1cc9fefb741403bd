"""The review queue in a real browser (Debian's Chromium driven by Playwright; never `playwright install`):
patrons' missed messages are in the analytics turns the event consumer writes (bot.analytics.ingest); an editor
opens 待审消息, adds one message as a phrasing of a knowledge question (published at once: the real action
code then answers it and a paraphrase) and assigns another to an intent, which ``python -m bot.review export``
writes as training data; the statistics page draws the share of conversations the bot handled alone per day.
Screenshots: test-artifacts/review-*.png."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from typing import List

import pytest

from tests.conftest import ROOT
from tests.test_editor import PASSWORDS, db_state, editor_settings, make_users
from tests.test_editor_browser import CHROMIUM_ARGS, Servers, watched_page
from tests.test_review import MISSED, PARAPHRASE, action, ask_bot, missed_turn, save_events, slot, user

ARTIFACTS = ROOT / "test-artifacts"
INTENT_MESSAGE = "泊車幾錢一個鐘"


class ReviewServers(Servers):
    """The desk app (its statistics and review queue read the analytics turns) and the Rasa parse stub."""

    def build(self):
        from bot.services.app import create_app

        settings = editor_settings(self.db_url, f"http://127.0.0.1:{self.rasa_port}", secure_cookies=True)
        return [(self._rasa_app(), self.rasa_port), (create_app(settings), self.port)]


def _day(ts: float) -> str:
    from bot.services.desk import to_local

    return to_local(dt.datetime.fromtimestamp(ts, dt.timezone.utc)).date().isoformat()


@pytest.fixture()
def trackers(kb_url):
    """Yesterday: one conversation the bot answered alone, one handed to an agent; today: two patrons whose
    messages the bot missed (one asked twice), both still with the bot."""
    yesterday = time.time() - 86400
    answered = [user("停车怎么收费", intent="ask_parking", ts=yesterday), action("action_route"),
                slot("topic_context", {"topic": "parking"}), action("action_listen")]
    handed = [user("转人工", intent="request_human", ts=yesterday + 60), action("action_request_human"),
              {"event": "pause", "timestamp": yesterday + 61}]
    save_events(kb_url, {
        "patron-y1": answered, "patron-y2": handed,
        "patron-a": missed_turn(MISSED, channel="socketio") + missed_turn(MISSED, channel="socketio"),
        "patron-b": missed_turn(INTENT_MESSAGE, channel="wechat")})
    return {_day(yesterday): 50.0, _day(time.time()): 100.0}


@pytest.fixture()
def servers(kb_url, trackers):
    make_users(kb_url)
    s = ReviewServers(kb_url).start()
    yield s
    s.stop()


def test_editor_works_the_review_queue_in_the_browser(servers, trackers, chromium, run_action, tracker_factory,
                                                     tmp_path, kb_url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = servers.base
    problems: List[str] = []
    assert "按停车场标准收费" not in "".join(ask_bot(run_action, tracker_factory, MISSED))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = watched_page(browser, base, problems)

            page.goto(f"{base}/editor/review")
            assert "/editor/login" in page.url  # the editors' login page
            page.fill("#username", "ed")
            page.fill("#password", PASSWORDS["ed"])
            page.click("#login-btn")
            page.wait_for_url(f"{base}/editor/review")

            # the queue: both missed messages, the one asked twice first
            rows = page.locator("#review tbody tr")
            expect(rows).to_have_count(2)
            expect(rows.nth(0).locator(".review-msg")).to_have_text(MISSED)
            expect(rows.nth(0).locator("td").nth(1)).to_have_text("2")
            expect(rows.nth(1).locator(".review-msg")).to_have_text(INTENT_MESSAGE)
            expect(rows.nth(1)).to_contain_text("微信")
            expect(page.locator('#review-tabs a[data-status="new"] .count')).to_have_text("2")
            page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

            # to a knowledge question: published at once
            facet_form = rows.nth(0).locator("form.assign-facet")
            facet_form.locator("select[name=facet]").select_option("parking_overtime")
            expect(facet_form.locator("input[name=example]")).to_have_value(MISSED)
            facet_form.locator("button[type=submit]").click()
            expect(page.locator("#flash-done")).to_contain_text("发布为版本 2")
            expect(page.locator("#review tbody tr")).to_have_count(1)
            version, files, audits = db_state(servers.db_url)
            assert version == 2 and f'"{MISSED}"' in files["questions.yml"].decode()
            assert audits[-1][:4] == ("ed", "questions", "parking_overtime", "update")

            # to an intent: stored for the next training
            intent_form = page.locator("#review tbody tr").first.locator("form.assign-intent")
            intent_form.locator("select[name=intent]").select_option("ask_parking")
            intent_form.locator("button[type=submit]").click()
            expect(page.locator("#flash-done")).to_contain_text("下次训练生效")
            expect(page.locator("#review-empty")).to_be_visible()

            page.click('#review-tabs a[data-status="facet"]')
            done = page.locator("#review tbody tr").first
            expect(done).to_contain_text("parking_overtime")
            expect(done).to_contain_text(MISSED)
            expect(done.locator(".decision .muted")).to_contain_text("ed · ")
            page.screenshot(path=str(ARTIFACTS / "review-facet.png"), full_page=True)
            page.click('#review-tabs a[data-status="intent"]')
            expect(page.locator("#review tbody tr").first).to_contain_text("停车（ask_parking）")

            # the statistics page: the share of conversations the bot handled alone, per day
            page.goto(f"{base}/desk/stats")
            page.wait_for_function("() => window.__stats && window.__stats.loaded")
            data = page.evaluate("window.__stats.data")
            share = page.evaluate("Chart.getChart(document.getElementById('chart-bot-share')).data")
            assert share["labels"] == data["labels"]
            by_day = dict(zip(share["labels"], share["datasets"][0]["data"]))
            for day, expected in trackers.items():
                assert by_day[day] == expected, (day, by_day)
            assert all(v is None for d, v in by_day.items() if d not in trackers)  # no conversations: no share
            page.screenshot(path=str(ARTIFACTS / "review-stats.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    assert not problems, problems

    # the next identical or paraphrased message is answered (real action code, the store just published)
    for text in (MISSED, PARAPHRASE):
        assert "超出部分按停车场标准收费" in "".join(ask_bot(run_action, tracker_factory, text)), text
    # the intent assignment becomes training data for the next training
    out = tmp_path / "nlu" / "reviewed.yml"
    r = subprocess.run([sys.executable, "-m", "bot.review", "export", "--output", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                          "KNOWLEDGE_DB_URL": kb_url})
    assert r.returncode == 0, r.stderr
    assert f"- intent: ask_parking\n  examples: |\n    - {INTENT_MESSAGE}\n" in out.read_text(encoding="utf-8")
