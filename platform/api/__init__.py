"""The JSON API's shared pieces: error responses, dependencies, health."""
