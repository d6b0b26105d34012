"""Interactive practice: the session, its schedule, history queries and the terminal UI."""
