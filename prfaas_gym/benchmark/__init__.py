"""Benchmark tasks (versioned scenario + load + decision interface + metric + seed splits +
bound) and the leaderboard that runs policies on them (``docs/benchmark.md``)."""

from prfaas_gym.benchmark.tasks import TASKS, SeedSplits, Task, check_training_seeds, get_task, list_tasks

__all__ = ["TASKS", "SeedSplits", "Task", "check_training_seeds", "get_task", "list_tasks"]
