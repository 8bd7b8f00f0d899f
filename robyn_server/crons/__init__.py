"""Crons: scheduled runs (schedules, storage-backed service, and the scheduler that fires them)."""
