"""Students as a distillation run builds them: the architectures by name (builders), the transformer
student's initialisations (random, teacher layers, pruned from the teacher, pretrained) and the teacher-to-student
layer mapping both the initialisation and the intermediate stage use."""
