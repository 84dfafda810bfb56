"""Pure domain logic: rules, clinical bands, baselines, episodes, identities. No I/O."""
