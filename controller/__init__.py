"""The Cushion controller: plan, safety envelope, session runner, device facade, transports, CLI."""
