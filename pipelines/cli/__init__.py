"""The command line: one module per command in ``commands/``, the option groups they share in ``options``,
the parser that keeps usage errors to one line in ``parsing``, and the dispatch of ``python -m pipelines.run``
in ``main``. Commands parse flags and call library code; no library module imports anything here."""
