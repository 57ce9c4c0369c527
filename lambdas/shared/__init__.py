"""What several Lambdas share: settings, tables, stores, HTTP error mapping and auth."""
