FROM busybox
HEALTHCHECK --interval=10 CMD true
# error: Dockerfile:2: time: missing unit in duration "10"
