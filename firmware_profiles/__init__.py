"""Device profiles: wire protocols described as data, and the sans-IO codec both sides use."""
