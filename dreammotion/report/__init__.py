"""Report helpers: side-by-side panels, loss curves and the HTML pages that Snakemake's report shows."""
