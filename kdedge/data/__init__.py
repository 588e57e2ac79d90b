from kdedge.data.loaders import Split, TaskData, load_task_data
from kdedge.data.metrics import compute_metrics
from kdedge.data.tasks import GLUE_TASKS, Task, get_glue_task

__all__ = ["GLUE_TASKS", "Split", "Task", "TaskData", "compute_metrics", "get_glue_task", "load_task_data"]
