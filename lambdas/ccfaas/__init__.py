"""CCFaaS: the function registry (this issue) and instances (the lifecycle)."""
