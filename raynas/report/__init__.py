"""Reports: Markdown summaries, correlation tables and PNG plots."""

from raynas.report.report import write_report

__all__ = ["write_report"]
