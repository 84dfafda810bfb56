"""Orchestration of the stages on one machine: the outbox dispatcher."""
