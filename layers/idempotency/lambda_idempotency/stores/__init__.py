"""Where records live: the `Store` contract and its implementations."""
