"""Queries on a real DuckDB file built by importing generated reports, and the windows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from analysis import queries
from analysis.window import (
    BadWindow,
    Window,
    days_ending,
    iso_week,
    last_complete_week,
)
from tests.support.reports import Failure, Sender, build_store, days_back

W47 = iso_week("2026-W47")
W48 = iso_week("2026-W48")
W47_DAYS = days_back(W47.last, 7)
W48_DAYS = days_back(W48.last, 7)

SENDERS = (
    Sender("Alpha Mail", "alpha.example", 100, days=W47_DAYS),
    Sender(
        "Alpha Mail",
        "alpha.example",
        100,
        days=W48_DAYS,
        failures=(
            Failure("certificate-expired", 2, mx="mx1.example.com", sending_ip="198.51.100.7"),
        ),
        tlsa_failures=(Failure("tlsa-invalid", 3, mx="mx1.example.com"),),
    ),
    # Overlapping details: two entries for one failed session a day.
    Sender(
        "Beta Post",
        "beta.example",
        50,
        days=W47_DAYS + W48_DAYS,
        failures=(
            Failure("validation-failure", 1, mx="mx2.example.com", sending_ip="203.0.113.9"),
            Failure("certificate-not-trusted", 1, mx="mx2.example.com", sending_ip="203.0.113.9"),
        ),
        summary_failed=1,
    ),
    Sender("Gamma Relay", "gamma.example", 10, days=W47_DAYS),
    Sender("Delta Cloud", "delta.example", 20, days=W47_DAYS, mode="testing"),
    Sender("Delta Cloud", "delta.example", 20, days=W48_DAYS, mode="enforce"),
)
DOMAINS = ["example.com"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("queries") / "data"
    build_store(data_dir, SENDERS, [])
    build_store(data_dir, [Sender("Alpha Mail", "alpha.example", 30)], W48_DAYS, "example.org")
    return data_dir


def records(frame: object) -> list[dict[str, object]]:
    return frame.to_dict("records")  # type: ignore[attr-defined, no-any-return]


def test_sessions_per_day_come_from_the_summaries(store: Path) -> None:
    frame = queries.sessions_per_day(store, DOMAINS, W48)
    assert frame["day"].tolist() == W48_DAYS
    assert set(frame["successful"]) == {98 + 49 + 20}
    # Beta's details add up to 2 a day, its summary says 1: the summary counts.
    assert set(frame["failed"]) == {2 + 1}
    assert set(frame["failure_rate"].round(6)) == {round(3 / 170, 6)}
    assert set(frame["reports"]) == {3}
    assert set(frame["senders"]) == {3}


def test_sessions_per_week(store: Path) -> None:
    frame = queries.sessions_per_week(store, DOMAINS, Window(W47.first, W48.last))
    rows = records(frame[["week", "week_start", "successful", "failed", "senders"]])
    assert rows == [
        {"week": "2026-W47", "week_start": W47.first, "successful": 7 * 179, "failed": 7,
         "senders": 4},
        {"week": "2026-W48", "week_start": W48.first, "successful": 7 * 167, "failed": 21,
         "senders": 3},
    ]  # fmt: skip
    assert frame["success_rate"].iloc[1] == pytest.approx(1169 / 1190)


def test_sender_rates(store: Path) -> None:
    frame = queries.sender_rates(store, DOMAINS, W48)
    rows = records(frame[["submitter", "organization_name", "successful", "failed", "days"]])
    assert rows == [
        {"submitter": "alpha.example", "organization_name": "Alpha Mail", "successful": 686,
         "failed": 14, "days": 7},
        {"submitter": "beta.example", "organization_name": "Beta Post", "successful": 343,
         "failed": 7, "days": 7},
        {"submitter": "delta.example", "organization_name": "Delta Cloud", "successful": 140,
         "failed": 0, "days": 7},
    ]  # fmt: skip
    assert frame["failure_rate"].tolist() == pytest.approx([0.02, 0.02, 0.0])


def test_failures_by_sender_break_down_by_result_type(store: Path) -> None:
    frame = queries.failures_by_sender(store, DOMAINS, W48)
    got = {(r["submitter"], r["result_type"]): r["sessions"] for r in records(frame)}
    # tlsa failures belong to the MX host's policy, not to the domain's.
    assert got == {
        ("alpha.example", "certificate-expired"): 14,
        ("beta.example", "validation-failure"): 7,
        ("beta.example", "certificate-not-trusted"): 7,
    }
    beta = frame[frame["submitter"] == "beta.example"]
    assert set(beta["sender_failed"]) == {7}
    assert set(beta["sender_successful"]) == {343}


def test_failures_by_sending_mta_and_mx(store: Path) -> None:
    mta = queries.failures_by_sending_mta(store, DOMAINS, W48)
    assert {(r["sending_mta_ip"], r["result_type"], r["sessions"]) for r in records(mta)} == {
        ("198.51.100.7", "certificate-expired", 14),
        ("203.0.113.9", "validation-failure", 7),
        ("203.0.113.9", "certificate-not-trusted", 7),
    }
    assert queries.failures_by_sending_mta(store, DOMAINS, W48, limit=1)[
        "sending_mta_ip"
    ].unique().tolist() in (["198.51.100.7"], ["203.0.113.9"])

    mx = queries.failures_by_mx(store, DOMAINS, W48)
    assert records(mx[["receiving_mx_hostname", "receiving_ip", "result_type", "sessions"]])[0] == {
        "receiving_mx_hostname": "mx1.example.com",
        "receiving_ip": "192.0.2.25",
        "result_type": "certificate-expired",
        "sessions": 14,
    }
    assert set(mx["senders"]) == {1}
    assert sorted(mx["receiving_mx_hostname"]) == [
        "mx1.example.com",
        "mx2.example.com",
        "mx2.example.com",
    ]


def test_new_result_types_and_silent_senders(store: Path) -> None:
    new = queries.new_result_types(store, DOMAINS, W48)
    assert records(new) == [{"result_type": "certificate-expired", "sessions": 14, "senders": 1}]
    assert queries.new_result_types(store, DOMAINS, W47).shape[0] == 2

    silent = queries.silent_senders(store, DOMAINS, W48)
    assert records(silent) == [
        {
            "submitter": "gamma.example",
            "organization_name": "Gamma Relay",
            "last_day": W47.last,
            "reports": 7,
        }
    ]


def test_policies_applied_show_a_sender_switching_mode(store: Path) -> None:
    frame = queries.policies_applied(store, DOMAINS, Window(W47.first, W48.last))
    delta = records(
        frame[frame["submitter"] == "delta.example"][
            ["policy_mode", "first_day", "last_day", "reports", "sessions"]
        ]
    )
    assert delta == [
        {"policy_mode": "testing", "first_day": W47.first, "last_day": W47.last, "reports": 7,
         "sessions": 140},
        {"policy_mode": "enforce", "first_day": W48.first, "last_day": W48.last, "reports": 7,
         "sessions": 140},
    ]  # fmt: skip
    ids = frame[frame["submitter"] == "delta.example"]["policy_id"]
    assert ids.nunique() == 2
    assert ids.notna().all()


def test_domains_filter_and_listing(store: Path) -> None:
    assert queries.policy_domains(store, W48) == ["example.com", "example.org"]
    other = queries.sender_rates(store, ["EXAMPLE.ORG."], W48)
    assert records(other[["submitter", "successful"]]) == [
        {"submitter": "alpha.example", "successful": 210}
    ]
    both = queries.sessions_per_day(store, ["example.com", "example.org"], W48)
    assert sorted(set(both["policy_domain"])) == ["example.com", "example.org"]
    assert queries.sessions_per_day(store, DOMAINS, iso_week("2025-W01")).empty


# ---------------------------------------------------------------- windows


def test_iso_weeks() -> None:
    assert iso_week("2026-W48") == Window(date(2026, 11, 23), date(2026, 11, 29))
    assert iso_week("2026W01") == Window(date(2025, 12, 29), date(2026, 1, 4))
    assert iso_week("2026-W48").label == "2026-W48"
    assert iso_week("2020-W53").days == 7
    for bad in ("2026-48", "W48", "2026-W54", "2025-W53", "2026-W00"):
        with pytest.raises(BadWindow):
            iso_week(bad)


def test_last_complete_week_and_day_windows() -> None:
    assert last_complete_week(date(2026, 12, 3)).label == "2026-W48"
    assert last_complete_week(date(2026, 11, 30)).label == "2026-W48"  # a Monday
    assert last_complete_week(date(2026, 11, 29)).label == "2026-W47"  # a Sunday
    window = days_ending(date(2026, 11, 29), 28)
    assert (window.first, window.days) == (date(2026, 11, 2), 28)
    assert window.label == "2026-11-02..2026-11-29"
    assert window.previous() == Window(date(2026, 10, 5), date(2026, 11, 1))
    with pytest.raises(BadWindow):
        days_ending(date(2026, 11, 29), 0)
