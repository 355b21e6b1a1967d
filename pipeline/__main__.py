from pipeline.cli import _main

_main()
