"""One module per command; each has ``parser()`` and ``main(argv)``."""
