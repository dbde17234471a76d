"""The Sentry bridge: finished OTel spans in, Sentry envelopes out."""
