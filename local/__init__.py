"""The embedded deployment: moto, an API Gateway adapter and local runtimes on one machine."""
