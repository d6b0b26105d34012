"""Running candidates' code: the sandbox and the coding-question harness."""
