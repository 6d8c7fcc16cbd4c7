"""The `tlsrpt` command."""

from __future__ import annotations

import importlib
import logging

import click

# name -> "module:attribute", imported only when that command runs (or for --help):
# the analysis commands pull in pandas and plotly, which `import` and `serve` never need.
COMMANDS = {
    "serve": "tlsrpt.commands.serve:serve_command",
    "import": "tlsrpt.commands.importing:import_command",
    "summary": "tlsrpt.commands.data:summary_command",
    "quarantine": "tlsrpt.commands.data:quarantine_command",
    "reprocess": "tlsrpt.commands.data:reprocess_command",
    "report": "tlsrpt.commands.analysis:report_command",
    "verdict": "tlsrpt.commands.analysis:verdict_command",
    "dns": "tlsrpt.commands.dns:dns_command",
    "check": "tlsrpt.commands.check:check_command",
    "enforce-plan": "tlsrpt.commands.enforce:enforce_plan_command",
    "samples": "tlsrpt.commands.samples:samples_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
