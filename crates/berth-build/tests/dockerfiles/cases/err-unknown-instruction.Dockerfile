FROM busybox


RUNN echo hi
# error: Dockerfile:4: unknown instruction: RUNN (did you mean RUN?)
