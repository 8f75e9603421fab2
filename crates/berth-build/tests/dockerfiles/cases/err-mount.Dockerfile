FROM busybox
RUN --mount=type=secret,id=a,src=b true
# error: Dockerfile:2: both source and id can't be set
