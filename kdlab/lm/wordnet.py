"""WordNet's glosses as a prompt → response corpus, offline (Debian's ``wordnet-base``, /usr/share/wordnet).

Every (lemma, sense) of WordNet 3.0 gives one text ``"<lemma> (<pos>): <definition>"``, e.g. ``"bank (n): sloping
land (especially the slope beside a body of water)"``: the prompt is ``"bank (n):"``, the response its definition
(the gloss up to its first quoted example). A lemma with several senses (26,899 lemma+pos entries with 78,590
senses) gives the same prompt several real responses: a next-token distribution with several modes, where forward
KL (mean-seeking) and reverse KL (mode-seeking) should differ, and where a sample can be checked against the known
senses (``kdlab.lm.evaluation.sense_scores``).

``entries(polysemous_only=True, single_words=True, familiar_only=True)``: the lab keeps single-word lemmas with at
least two *familiar* senses of one part of speech — the senses tagged in the SemCor corpus (``index.<pos>``'s
``tagsense_cnt``: the first senses of a lemma, by frequency): 5,497 lemma+pos entries with 16,747 senses, ~0.3M
tokens, the text a 2-core teacher can learn in minutes, every prompt with several real answers (``bank (n)``: the
river bank, the financial institution, the building, ...).
Split: each (lemma, pos) entry goes whole to train or held out (hash of the lemma and pos: stable across
machines), so held-out prompts are lemmas the models never saw defined.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kdlab.errors import KDLabError

POS = {"noun": "n", "verb": "v", "adj": "adj", "adv": "adv"}
WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/opt/homebrew/share/wordnet")
MISSING = ("WordNet's data files (data.noun, data.verb, data.adj, data.adv) were not found in {where}. Install "
           "them with `sudo apt-get install wordnet-base` (Debian/Ubuntu; CI does), or point KDLAB_WORDNET_DIR at "
           "a folder holding them; the smoke profile needs none.")


@dataclass(frozen=True)
class Entry:
    lemma: str
    pos: str  # n, v, adj, adv
    definition: str
    synset: str  # "<offset>-<pos>": the sense's id

    @property
    def prompt(self) -> str:
        return f"{self.lemma} ({self.pos}):"

    @property
    def text(self) -> str:
        return f"{self.prompt} {self.definition}"


def wordnet_dir() -> Path:
    """The folder holding WordNet's data files; KDLabError naming the package when there is none."""
    candidates = [os.environ["KDLAB_WORDNET_DIR"]] if os.environ.get("KDLAB_WORDNET_DIR") else list(WORDNET_DIRS)
    for folder in candidates:
        if all((Path(folder) / f"data.{pos}").is_file() for pos in POS):
            return Path(folder)
    raise KDLabError(MISSING.format(where=", ".join(candidates)))


def definition(gloss: str) -> str:
    """The gloss up to its first quoted example, without a trailing ';'."""
    text = gloss.split('"')[0].strip().rstrip(";").strip()
    return re.sub(r"\s+", " ", text)


def all_entries(folder: Path | None = None) -> list[Entry]:
    """Every (lemma, sense) pair of WordNet's four data files, in file order."""
    folder = folder or wordnet_dir()
    out = []
    for name, pos in POS.items():
        with open(folder / f"data.{name}", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("  ") or " | " not in line:  # the licence header
                    continue
                head, gloss = line.split(" | ", 1)
                fields = head.split()
                count = int(fields[3], 16)
                text = definition(gloss)
                if not text:
                    continue
                for i in range(count):
                    lemma = re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ").lower()
                    out.append(Entry(lemma, pos, text, f"{fields[0]}-{pos}"))
    return out


def familiar_senses(folder: Path | None = None) -> set[str]:
    """Synset ids (``"<offset>-<pos>"``) of every lemma's SemCor-tagged senses, with the lemma: ``{(lemma, pos,
    synset)}`` read from ``index.<pos>`` (its first ``tagsense_cnt`` offsets)."""
    folder = folder or wordnet_dir()
    out = set()
    for name, pos in POS.items():
        path = folder / f"index.{name}"
        if not path.is_file():
            raise KDLabError(MISSING.format(where=str(folder)).replace("data files (data.noun", "index files (index.noun"))
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or not line.strip():
                continue
            f = line.split()
            pointers = int(f[3])
            tagged = int(f[5 + pointers])
            offsets = f[6 + pointers:]
            lemma = f[0].replace("_", " ").lower()
            out.update((lemma, pos, f"{o}-{pos}") for o in offsets[:tagged])
    return out


def entries(polysemous_only: bool = True, single_words: bool = True, familiar_only: bool = True,
            folder: Path | None = None) -> list[Entry]:
    """The lab's entries (module docstring), deduplicated, in file order."""
    found = all_entries(folder)
    if familiar_only:
        familiar = familiar_senses(folder)
        found = [e for e in found if (e.lemma, e.pos, e.synset) in familiar]
    if single_words:
        found = [e for e in found if " " not in e.lemma and "-" not in e.lemma]
    seen, unique = set(), []
    for e in found:
        if (e.lemma, e.pos, e.definition) not in seen:
            seen.add((e.lemma, e.pos, e.definition))
            unique.append(e)
    if polysemous_only:
        senses: dict[tuple[str, str], int] = {}
        for e in unique:
            senses[(e.lemma, e.pos)] = senses.get((e.lemma, e.pos), 0) + 1
        unique = [e for e in unique if senses[(e.lemma, e.pos)] > 1]
    return unique


def held_out(entry: Entry, share: float = 0.05) -> bool:
    """Whether the entry's (lemma, pos) belongs to the held-out split (a stable hash, ``share`` of the entries)."""
    digest = hashlib.sha256(f"{entry.lemma}|{entry.pos}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def split(found: list[Entry], share: float = 0.05) -> dict[str, list[Entry]]:
    """``{"train": [...], "validation": [...]}``, each (lemma, pos) whole on one side, order kept."""
    return {"train": [e for e in found if not held_out(e, share)],
            "validation": [e for e in found if held_out(e, share)]}


def by_lemma(found: list[Entry], seed: int = 0) -> list[Entry]:
    """The entries with each (lemma, pos)'s senses next to each other, the lemmas in a fixed shuffled order
    (``seed``): the first N entries are then (nearly) whole lemmas from all over the alphabet — what a student that
    sees "a subset of the text" gets (``train_texts``), every sense of its lemmas included."""
    import random

    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in found:
        groups.setdefault((e.lemma, e.pos), []).append(e)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    return [e for k in keys for e in groups[k]]


def whole_prompts(texts: list[str], n: int) -> list[str]:
    """The prompts (``"bank (n):"``) whose every text lies among the first ``n`` of ``texts`` (whole lemmas: a
    student that saw them saw every sense), in order."""
    heads = [t.partition(": ")[0] + ":" for t in texts]
    outside = set(heads[n:])
    return [h for h in dict.fromkeys(heads[:n]) if h not in outside]


def senses_of_texts(texts: list[str]) -> dict[str, list[str]]:
    """Prompt → its definitions, from ``"<prompt>: <definition>"`` texts (as ``senses_by_prompt``)."""
    out: dict[str, list[str]] = {}
    for t in texts:
        head, sep, definition = t.partition(": ")
        if sep:
            out.setdefault(head + ":", []).append(definition)
    return out


def senses_by_prompt(found: list[Entry]) -> dict[str, list[str]]:
    """Prompt → the definitions of its senses (the references of the sense measures)."""
    out: dict[str, list[str]] = {}
    for e in found:
        out.setdefault(e.prompt, []).append(e.definition)
    return out
