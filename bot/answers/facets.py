"""Specific questions of each topic ("facets"), matched at run time against the patron's words.

Facets come from the knowledge store, so an editor who adds a question and a few phrasings has it
answered by the next message, without retraining:
- ``questions.yml``: topic, example phrasings, an answer template over the store (``bot.answers.templates``);
- the keyword items of ``facilities.yml``, ``viewing_rules.yml`` and ``orders.yml`` (name + aliases → answer).

Matching: character 1–3-gram TF-IDF cosine between the message and each example, after folding and masking
the values that do not decide the question (hall types, films, numbers) and the filler characters; a keyword
item whose name or alias occurs in the message scores at least ``KEYWORD_SCORE``. A linear SVM over the same
features, trained on all facets' examples, re-ranks the likenesses: the nearest single example is often a
long phrasing that shares common words, while the SVM weighs the words that tell one facet from another
(blind facet questions, bench/facets.py: top-1 within the topic 0.918 → 0.932, over all topics 0.808 →
0.829). Its facet keeps its cosine score, the others lose ``RERANK_WEIGHT`` × how much less likely the SVM
finds them than their topic's likeliest, so the thresholds the dialogue uses keep their meaning. The index is
built once per knowledge version (the SVM fits in a fraction of a second).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

KEYWORD_SCORE = 0.62
RERANK_WEIGHT = 0.5
RERANK_TEMPERATURE = 0.1  # the SVM's margins, as a softmax over facets
CARRIER_WORDS = {"入场", "进场", "进厅", "带"}
ALIAS_WEIGHT = 0.7
FILLERS = re.compile(r"请问|我想|你们|一下|这个|那个|这部|那部|这片|就是|然后|它|[的了吗呢吧啊呀哦嘛哈么嗯我,.，。!！?？~～、 ]")
DIGITS = re.compile(r"\d+(\.\d+)?")
DAYS = re.compile(r"(下下?|这|本|上)?(周|星期|礼拜)[一二三四五六日天末]|[今明后昨前]天|大后天|今晚|明晚|\d+月\d+[日号]?|\d+[日号]|"
                  r"工作日|平日|平时|周末|节假日|假日")
LONG_MESSAGE = 24  # characters; a longer message is matched clause by clause as well
CLAUSE = re.compile(r"[，,。.!！?？；;~～\s]+|还是|或者|另外|然后|麻烦|请问")
UNMASKED = {"2D", "3D", "2d", "3d"}  # the version is what some questions are about (哪些厅能看3D)
KEYWORD_TOPICS = {"facilities": ("facilities", "facilities"), "viewing_rules": ("viewing_rules", "rules"),
                  "order_problem": ("orders", "problems")}


@dataclass(frozen=True)
class Facet:
    topic: str
    key: str
    examples: Tuple[str, ...]
    answer: str  # a template (questions.yml) or literal text (keyword items)
    keywords: Tuple[str, ...] = ()
    templated: bool = True


@dataclass
class Match:
    facet: Facet
    score: float


@dataclass
class FacetIndex:
    version: int
    facets: List[Facet]
    masks: List[Tuple[str, str]] = field(default_factory=list)  # (name, placeholder), longest first
    synonyms: List[Tuple[str, str]] = field(default_factory=list)  # (variant, usual word), longest first
    _vectorizer: Any = None
    _matrix: Any = None
    _owner: List[int] = field(default_factory=list)
    _svm: Any = None
    _synonym_pattern: Any = None
    _synonym_map: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, sections: Dict[str, Any], masks: Iterable[Tuple[str, str]]) -> "FacetIndex":
        # examples are read as the patron's messages are (Cantonese and chat words folded by the lexicon)
        from bot.text.normalise import fold, lexicon_from_section
        lexicon = lexicon_from_section(sections.get("lexicon"))
        facets = [Facet(q["topic"], q["key"], tuple(fold(e, lexicon).text for e in q["examples"]), q["answer"])
                  for q in (sections.get("questions") or {}).get("questions", [])]
        for topic, (section, key) in KEYWORD_TOPICS.items():
            for item in (sections.get(section) or {}).get(key, []):
                words = tuple(w for w in (item["name"], *item.get("aliases", [])) if w)
                facets.append(Facet(topic, item["key"], words, item["answer"], keywords=words, templated=False))
        masks = {(m.upper(), sign) for m, sign in masks if len(m) >= 2 and m not in UNMASKED}
        synonyms = {(v.upper(), e["to"].upper()) for e in (sections.get("questions") or {}).get("synonyms", [])
                    for v in e["variants"] if v}
        index = cls(version, facets, sorted(masks, key=lambda m: -len(m[0])),
                    sorted(synonyms, key=lambda s: -len(s[0])))
        index._fit()
        return index

    def _fit(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs: List[str] = []
        for i, facet in enumerate(self.facets):
            for example in facet.examples:
                prepared = self.prepare(example)
                if len(prepared) < 2:  # nothing but a value (「有杜比的吗」): no phrasing left to match
                    continue
                docs.append(prepared)
                self._owner.append(i)
        if not docs:
            return
        self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform(docs)
        if len(set(self._owner)) >= 2:
            from sklearn.svm import LinearSVC

            self._svm = LinearSVC(C=0.5, class_weight="balanced").fit(self._matrix, self._owner)

    def _likelihood(self, vectors: Any) -> Dict[int, float]:
        """How likely the SVM finds each facet for the best of the queries (softmax of its margins)."""
        import numpy as np

        margins = np.atleast_2d(self._svm.decision_function(vectors))
        z = (margins - margins.max(axis=1, keepdims=True)) / RERANK_TEMPERATURE
        p = np.exp(z)
        p = (p / p.sum(axis=1, keepdims=True)).max(axis=0)
        return {int(c): float(v) for c, v in zip(self._svm.classes_, p)}

    def prepare(self, text: str, synonyms: bool = True) -> str:
        """The question without its values and fillers: 「VIP厅早场也打折吗」 → 「早场也打折」. Keyword items are
        looked for without the synonyms: 「扣钱了」 is said as such, not as any 「收费」 question."""
        out = text.upper()
        for name, sign in self.masks:
            out = out.replace(name, sign)
        if self.synonyms and synonyms:  # one pass, longest first, so a replacement is never replaced again
            out = self._synonym_re().sub(lambda m: self._synonym_map[m.group(0)], out)
        out = DIGITS.sub("", DAYS.sub("", out))
        return FILLERS.sub("", out) or out

    def facet(self, key: Optional[str], topic: Optional[str] = None) -> Optional[Facet]:
        """The facet of this key (and topic, when given), if the store has it."""
        return next((f for f in self.facets if f.key == key and (topic is None or f.topic == topic)), None) \
            if key else None

    def _synonym_re(self) -> "re.Pattern":
        if self._synonym_pattern is None:
            self._synonym_map = dict(self.synonyms)
            self._synonym_pattern = re.compile("|".join(re.escape(v) for v, _ in self.synonyms))
        return self._synonym_pattern

    def match(self, text: str, topics: Optional[Sequence[str]] = None, clauses: bool = False) -> List[Match]:
        """Facets (of ``topics``, or all) by score, best first; with ``clauses``, a long message's asking
        clauses are matched on their own as well."""
        if self._vectorizer is None or not text:
            return []
        prepared = self.prepare(text)
        queries = [prepared]
        if clauses and len(text) > LONG_MESSAGE:
            # a long (voice) message asks in one of its clauses: each clause that asks is matched too
            from bot.answers.ask import is_question
            queries += [q for q in (self.prepare(c) for c in CLAUSE.split(text) if is_question(c))
                        if len(q) >= 3 and q != prepared]
        vectors = self._vectorizer.transform(queries)
        sims = (self._matrix @ vectors.T).toarray().max(axis=1)
        best: Dict[int, float] = {}
        for row, owner in enumerate(self._owner):
            if len(prepared) < 2:
                continue  # nothing but values and fillers: no question to match
            # a keyword item's aliases are single words, not phrasings: a likeness to one counts for less
            sim = float(sims[row]) * (ALIAS_WEIGHT if self.facets[owner].keywords else 1.0)
            if sim > best.get(owner, 0.0):
                best[owner] = sim
        if self._svm is not None and best:
            # within each topic: which topic a short follow-up is about is the dialogue's to say (context,
            # intent), so the SVM ranks a topic's facets against each other, never one topic against another
            likely = self._likelihood(vectors)
            top: Dict[str, float] = {}
            for i in best:
                top[self.facets[i].topic] = max(top.get(self.facets[i].topic, 0.0), likely.get(i, 0.0))
            best = {i: sim - RERANK_WEIGHT * (top[self.facets[i].topic] - likely.get(i, 0.0)) for i, sim in best.items()}
        upper = self.prepare(text, synonyms=False)  # keywords are looked for with films masked: 熊猫 is no 猫
        raw = text.upper()
        for i, facet in enumerate(self.facets):
            words = [self.prepare(w, synonyms=False) for w in facet.keywords]
            if words and any(w and w in upper for w in words):
                # 「能带狗狗入场吗」: 入场 only carries the question, the other item names what it is about
                longest = max(1 if w in CARRIER_WORDS else len(w) for w in words if w and w in upper)
                # a word said as such beats one the filler folding made up (「多扣的钱」 is no 「扣钱了」)
                verbatim = any(w.upper() in raw for w in facet.keywords if w)
                best[i] = max(best.get(i, 0.0), KEYWORD_SCORE + 0.02 * min(longest, 6) + (0.01 if verbatim else 0.0))
        wanted = set(topics) if topics else None
        found = [Match(self.facets[i], s) for i, s in best.items()
                 if s > 0 and (wanted is None or self.facets[i].topic in wanted)]
        return sorted(found, key=lambda m: -m.score)


_lock = threading.Lock()
_cached: Optional[FacetIndex] = None


def index_for(knowledge: Any) -> FacetIndex:
    """The facet index of this knowledge snapshot (rebuilt when the version changes)."""
    global _cached
    with _lock:
        if _cached is None or _cached.version != knowledge.version:
            # the values are taken out: what decides a facet is the question around them
            masks = [(n, "") for t in knowledge.hall_types for n in (t.name, *t.aliases)]
            masks += [(n, "") for f in knowledge.films for n in (f.title, *f.aliases)]
            masks += [(n, "") for lv in knowledge.sections.get("membership", {}).get("levels", [])
                      for n in (lv["name"], *lv.get("aliases", []))]
            _cached = FacetIndex.build(knowledge.version, knowledge.sections, masks)
        return _cached
