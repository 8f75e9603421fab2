FROM busybox
COPY --form=build a b
# error: Dockerfile:2: unknown flag: --form (did you mean from?)
