"""VaaS: Veracruz as a Service. Turns a VaaS policy into a running, attested runtime."""
