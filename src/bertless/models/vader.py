"""The offline English sentiment dataset of Hutto & Gilbert (2014), fetched from PyPI.

Source: Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text. Eighth International Conference on Weblogs and Social Media
(ICWSM-14), Ann Arbor, MI. The sentences and their ratings ship, MIT-licensed, in the source
distribution of `vaderSentiment==3.3.2` (additional_resources/hutto_ICWSM_2014.tar.gz), so a machine
that reaches only package registries can still train and test on real text. It is downloaded
into a user cache on first use and never stored in this repository.

Each `*_GroundTruth.txt` file is tab-separated: id, the mean rating of about 20 human raters on a
−4..+4 scale, text. Four domains: 10,605 movie-review snippets (Pang & Lee 2004), 4,200 tweet-like
texts, 3,708 product-review snippets (Hu & Liu 2004), 5,190 New York Times editorial snippets.

Three classes from the mean rating: below −0.5 negative, above +0.5 positive, else neutral. The
paper itself cut the rating, rescaled to −1..1, at ±0.05 (±0.2 on the raw scale); we use a wider
band because a mean within half a point of zero means the raters saw little sentiment or
disagreed, and a classifier trained on such texts as "positive" learns noise. The cost is a rare
neutral class among movies (562 of 10,605), which class-balanced batches make up for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bertless.core.errors import BertlessError, InputError
from bertless.models.labelled import Labelled

REQUIREMENT = "vaderSentiment==3.3.2"
ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
LABELS = ["negative", "neutral", "positive"]
THRESHOLD = 0.5
DOMAINS = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "products": "amazonReviewSnippets_GroundTruth.txt",
    "news": "nytEditorialSnippets_GroundTruth.txt",
}
CITATION = (
    "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
    "Analysis of Social Media Text. Eighth International Conference on Weblogs and Social Media "
    "(ICWSM-14). Ann Arbor, MI, June 2014."
)


class DownloadError(BertlessError):
    """The dataset could not be fetched from the package index."""


def cache_dir() -> Path:
    """Where downloads live: $BERTLESS_CACHE_DIR, else $XDG_CACHE_HOME/bertless (~/.cache)."""
    if os.environ.get("BERTLESS_CACHE_DIR"):
        return Path(os.environ["BERTLESS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bertless"


def fetch(cache: Path | None = None) -> Path:
    """The folder holding the four ground-truth files, downloading them on first use."""
    target = (cache or cache_dir()) / "hutto_ICWSM_2014"
    if all((target / name).is_file() for name in DOMAINS.values()):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        scratch = Path(scratch)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                REQUIREMENT,
                "-d",
                str(scratch),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        sdists = list(scratch.glob("*.tar.gz"))
        if done.returncode != 0 or not sdists:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise DownloadError(f"pip could not download {REQUIREMENT} ({last}).")
        with tarfile.open(sdists[0]) as sdist:
            inner = sdist.extractfile(f"{sdists[0].name[: -len('.tar.gz')]}/{ARCHIVE}")
            if inner is None:
                raise DownloadError(f"{sdists[0].name} has no {ARCHIVE}.")
            with tarfile.open(fileobj=inner) as dataset:
                dataset.extractall(scratch / "data", filter="data")
        shutil.rmtree(target, ignore_errors=True)
        (scratch / "data" / "hutto_ICWSM_2014").rename(target)
    return target


def sentiment(score: float) -> str:
    """The class of a mean rating: see the module docstring for why ±0.5."""
    if score < -THRESHOLD:
        return "negative"
    return "positive" if score > THRESHOLD else "neutral"


def read_ratings(path: Path) -> list[tuple[str, float]]:
    """(text, mean rating) per line of a ground-truth file."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            rows.append((fields[2].strip(), float(fields[1])))
        except (IndexError, ValueError) as error:
            raise InputError(f"{path.name} line {number} is not id, rating, text.") from error
    return rows


def load(domain: str) -> Labelled:
    """One domain (`movies`, `tweets`, `products`, `news`) or `all`, as three-class examples."""
    if domain != "all" and domain not in DOMAINS:
        raise InputError(f"vader:{domain} is not a domain: use one of {', '.join(DOMAINS)} or all.")
    folder = fetch()
    names = DOMAINS.values() if domain == "all" else [DOMAINS[domain]]
    rows = [row for name in names for row in read_ratings(folder / name)]
    return Labelled([t for t, _ in rows], [LABELS.index(sentiment(s)) for _, s in rows], LABELS)
