"""Report: reads every stage's results into one ReportData, formats each report section, renders with Quarto or its engines.
Hands results/report/cara_report.{html,pdf} (and the archive of earlier renders) to the reader.
"""
