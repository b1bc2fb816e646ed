"""HTTP: the FastAPI app, dependencies, error handlers, schemas, routes, the dashboard and the capture page. Thin: it parses, checks access and calls the domain."""
