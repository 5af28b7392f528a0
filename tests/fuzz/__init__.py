"""Property-based fuzzing of the Auth0 body parser and of the webhook endpoint (hypothesis)."""
