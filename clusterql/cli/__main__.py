"""`python -m clusterql.cli`: the console script, for a checkout that is not installed."""

from clusterql.cli import main

main()
