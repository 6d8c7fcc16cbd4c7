"""Example reports for a first run: a month of reports about example.com from a few
fictional senders, with the failures an MTA-STS rollout typically shows."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DOMAIN = "example.com"
MX = ("mx1.example.com", "mx2.example.com")
MX_IP = {"mx1.example.com": "192.0.2.25", "mx2.example.com": "192.0.2.26"}
POLICY = ["version: STSv1", "mode: testing", "mx: mx1.example.com", "mx: mx2.example.com",
          "max_age: 604800"]  # fmt: skip

# name, contact domain, sending network, sessions per day, failures: (result type, share, mx)
SENDERS: tuple[tuple[str, str, str, int, tuple[tuple[str, float, str | None], ...]], ...] = (
    ("Big Mail Example", "bigmail.example", "198.51.100.", 900, ()),
    ("Office Cloud Example", "officecloud.example", "203.0.113.", 400,
     (("certificate-host-mismatch", 0.03, "mx2.example.com"),)),
    ("Regional Post Example", "regionalpost.example", "198.18.0.", 60,
     (("sts-policy-fetch-error", 0.05, None),)),
    ("Old Relay Example", "oldrelay.example", "198.18.1.", 25,
     (("certificate-not-trusted", 0.2, "mx1.example.com"),)),
)  # fmt: skip


def _report(rng: random.Random, day: datetime, sender: tuple[Any, ...], seq: int) -> dict[str, Any]:
    name, contact, net, volume, failures = sender
    total = max(1, int(rng.gauss(volume, volume * 0.15)))
    details = []
    failed = 0
    for result_type, share, mx in failures:
        count = sum(1 for _ in range(total) if rng.random() < share)
        if not count:
            continue
        failed += count
        detail: dict[str, Any] = {"result-type": result_type, "failed-session-count": count}
        if mx:
            detail |= {
                "sending-mta-ip": f"{net}{rng.randrange(2, 250)}",
                "receiving-mx-hostname": mx,
                "receiving-ip": MX_IP[mx],
            }
        else:
            detail["failure-reason-code"] = "bad https response code: 503"
        details.append(detail)
    policy: dict[str, Any] = {
        "policy": {"policy-type": "sts", "policy-string": POLICY, "policy-domain": DOMAIN,
                   "mx-host": list(MX)},
        "summary": {"total-successful-session-count": total - failed,
                    "total-failure-session-count": failed},
    }  # fmt: skip
    if details:
        policy["failure-details"] = details
    end = day + timedelta(days=1) - timedelta(seconds=1)
    return {
        "organization-name": name,
        "date-range": {"start-datetime": f"{day:%Y-%m-%dT%H:%M:%SZ}",
                       "end-datetime": f"{end:%Y-%m-%dT%H:%M:%SZ}"},
        "contact-info": f"tlsrpt@{contact}",
        "report-id": f"{day:%Y-%m-%d}_{DOMAIN}_{seq}",
        "policies": [policy],
    }  # fmt: skip


def write_samples(folder: Path, *, days: int = 35, end: datetime | None = None) -> list[Path]:
    """Write `days` days of reports ending yesterday (UTC) as .json.gz files."""
    rng = random.Random(8460)  # noqa: S311 (example data, not secrets)
    last = (end or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for offset in range(days, 0, -1):
        day = last - timedelta(days=offset)
        for seq, sender in enumerate(SENDERS):
            report = _report(rng, day, sender, seq)
            start, stop = int(day.timestamp()), int(day.timestamp()) + 86399
            path = folder / f"{sender[1]}!{DOMAIN}!{start}!{stop}!{seq:03d}.json.gz"
            path.write_bytes(gzip.compress(json.dumps(report).encode(), mtime=0))
            written.append(path)
    return written
