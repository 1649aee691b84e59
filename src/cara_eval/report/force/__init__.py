"""A force's feedback report (report/force/force_report.qmd): one module per partial, reading the national report's
tables through the same `ReportData` and showing this force's row of the national report's protected tables, so a
count hidden nationally is hidden here too."""
