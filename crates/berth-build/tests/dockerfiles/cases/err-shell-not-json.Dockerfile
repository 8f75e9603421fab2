FROM busybox
SHELL /bin/bash -c
# error: Dockerfile:2: SHELL requires the arguments to be in JSON form
