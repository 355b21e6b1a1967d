"""Company-name linker: a table of positives, the ambiguous negatives, boundaries, case, possessives."""

from __future__ import annotations

import pytest

from pipeline.linker import CompanyLinker, default_linker, load_entries


@pytest.fixture(scope="module")
def linker() -> CompanyLinker:
    return default_linker()


@pytest.mark.parametrize(
    ("text", "tickers"),
    [
        ("Nvidia slides after guidance cut", ["NVDA"]),
        ("JPMorgan Chase raises its dividend", ["JPM"]),
        ("Exxon to buy Pioneer", ["XOM"]),
        ("Google and Facebook fined in France", ["GOOGL", "META"]),
        ("Microsoft and Netflix strike an ad deal", ["MSFT", "NFLX"]),
        ("Ford Motor recalls 300,000 trucks", ["F"]),
        ("Coca-Cola Europacific Partners beats", ["CCEP"]),
        ("Bank Of America Raises Dividend", ["BAC"]),  # title case: 'Of' may be capitalised
        ("Goldman Sachs cuts Tesla to neutral", ["GS", "TSLA"]),
        ("Apple shares fall after iPhone delay", ["AAPL"]),
        ("Target cuts its sales outlook", ["TGT"]),
        ("Visa revenue beats estimates", ["V"]),
        ("Oracle stock jumps on cloud deal", ["ORCL"]),
        ("Amazon to acquire One Medical", ["AMZN"]),
        ("Ford shares slide", ["F"]),
        ("AAPL: Apple unveils a new Mac", ["AAPL"]),  # ambiguous name, its own ticker is the context
        ("Shares of NVIDIA rose", ["NVDA"]),  # the company's own capitals
        ("EBay nears a deal for StubHub", ["EBAY"]),  # eBay at the start of a sentence
        ("Blackrock says returns will be lower", ["BLK"]),
        (
            "Pool Corp: a simple strategy",
            ["POOL"],
        ),  # a legal suffix right after an ambiguous name  # single-word brand, other inner capitals
    ],
)
def test_positives(linker: CompanyLinker, text: str, tickers: list[str]) -> None:
    assert linker.tickers_in(text) == tickers


@pytest.mark.parametrize(
    "text",
    [
        "Apple picking season starts early this year",
        "Apple-picking season draws crowds",
        "Target date funds gain popularity",
        "Target-date funds gain popularity",
        "Shell-shocked investors dump stocks",
        "New student Visa rules announced",
        "They had to Ford the river at dawn",
        "The Oracle of Omaha buys more shares",
        "Amazon rainforest fires hit a record",
        "Analysts cut the price target on Deere",  # Deere is linked, Target is not
        "Delta variant spreads",
        "Owens Corning upgraded at Wells",  # another company's name
        "Meta Financial declares $0.05 dividend",  # a capitalised neighbour: not Meta Platforms
        "Dell'Oro Group research on SASE",
        "Hedge Funds Dropped The Ball On The Meet Group, Inc.",  # another company's suffix is no context
    ],
)
def test_ambiguous_negatives(linker: CompanyLinker, text: str) -> None:
    found = linker.tickers_in(text)
    assert not set(found) & {"AAPL", "TGT", "V", "F", "ORCL", "AMZN", "DAL", "GLW", "META", "DELL", "BALL"}, found


def test_possessives_keep_the_span_without_the_suffix(linker: CompanyLinker) -> None:
    for text in ("Apple's sales slump", "Apple’s sales slump", "Tesla's stock drops", "Travelers' profit falls"):
        [match] = linker.link(text)
        assert text[match.start : match.end] == match.span
        assert not match.span.endswith(("'", "’", "s'"))
    assert [m.span for m in linker.link("Nvidia's quarter")] == ["Nvidia"]


def test_word_boundaries(linker: CompanyLinker) -> None:
    assert linker.tickers_in("Applesauce sales jump") == []
    assert linker.tickers_in("Pineapple stock runs out") == []
    assert linker.tickers_in("Artificial Intelligence shares") == []
    assert linker.tickers_in("Apples and oranges") == []
    assert linker.tickers_in("paid $3M for it") == []  # an amount, not 3M


def test_case_rules(linker: CompanyLinker) -> None:
    assert linker.tickers_in("nvidia slides") == []  # a lower-case span never links
    assert linker.tickers_in("apple shares fall") == []
    assert linker.tickers_in("APPLE SHARES FALL ON IPHONE DELAY") == ["AAPL"]  # all-caps headline
    assert linker.tickers_in("APPLE picking season, says farmer") == []  # ambiguous all-caps in normal text
    assert linker.tickers_in("NVIDIA beats") == ["NVDA"]
    assert linker.tickers_in("JPMORGAN CUTS JOBS") == ["JPM"]


def test_match_records_span_form_and_rule(linker: CompanyLinker) -> None:
    [nvidia] = linker.link("Nvidia slides after guidance cut")
    assert (nvidia.ticker, nvidia.span, nvidia.start, nvidia.end, nvidia.rule) == ("NVDA", "Nvidia", 0, 6, "exact")
    [apple] = linker.link("Apple shares fall")
    assert (apple.kind, apple.rule) == ("short_form", "financial_context")
    [google] = linker.link("Google wins")
    assert (google.ticker, google.kind) == ("GOOGL", "alias")


def test_longest_match_wins(linker: CompanyLinker) -> None:
    [match] = linker.link("Ford Motor recalls trucks")
    assert match.span == "Ford Motor"


def test_no_text_makes_it_raise(linker: CompanyLinker) -> None:
    for text in ("", " ", "'", "Apple'", "$", "Apple-", "A\x00pple", "\ud800", "Ford's", "é" * 50):
        linker.link(text)


def test_shipped_data_covers_both_indices() -> None:
    entries = load_entries()
    tickers = {e.ticker for e in entries if e.ticker}
    assert len(tickers) >= 510
    assert {"AAPL", "NVDA", "MSFT", "JPM", "XOM", "GOOGL", "META", "BRK.B", "ASML", "PDD"} <= tickers
    assert "GOOG" not in tickers  # one ticker per company


def test_a_form_naming_two_tickers_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    companies = tmp_path / "companies.csv"
    companies.write_text("ticker,name,short_forms,ambiguous_forms\nAAA,Acme Inc.,Acme,\nBBB,Acme,,\n")
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("alias,ticker,ambiguous\n")
    with pytest.raises(ValueError, match="Acme"):
        load_entries(companies, aliases)
