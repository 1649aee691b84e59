"""The report's sections: one module per report/_<section>.qmd partial, holding what that partial shows."""
