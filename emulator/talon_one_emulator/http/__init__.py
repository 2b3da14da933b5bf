"""HTTP: the server protocol, how a Talon.One call is answered, routes and the admin API."""
