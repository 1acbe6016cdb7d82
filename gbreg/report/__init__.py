"""What a person reads: the end-of-run summary, the figures and the HTML report."""
