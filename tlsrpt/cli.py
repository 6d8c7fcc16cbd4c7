"""The `tlsrpt` command."""

from __future__ import annotations

import logging

import click

from tlsrpt.commands import analysis, check, data, dns, enforce, importing, samples, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tlsrpt-collector")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Collect SMTP TLS reports (RFC 8460), store them in DuckDB, chart them and decide
    when an MTA-STS policy can move from testing to enforce.

    All state lives in one data directory: --data-dir on each command, or the
    TLSRPT_DATA_DIR environment variable, default ./data.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(importing.import_command)
main.add_command(data.summary_command)
main.add_command(data.quarantine_command)
main.add_command(data.reprocess_command)
main.add_command(samples.samples_command)
main.add_command(dns.dns_command)
main.add_command(check.check_command)
main.add_command(enforce.enforce_plan_command)
main.add_command(serve.serve_command)
main.add_command(analysis.report_command)
main.add_command(analysis.verdict_command)
