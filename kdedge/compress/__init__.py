"""What makes a student small before distillation: importance scores and structured pruning."""
