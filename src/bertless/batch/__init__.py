"""Scoring big datasets with a bundle: a resumable local engine, and Spark for clusters.

Both engines score rows with `scoring.score_rows`, so a row gets the same answer, or the same
error, whichever engine scores it.
"""
