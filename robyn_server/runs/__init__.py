"""Run execution: the run manager, the graph driver and run error reporting."""
