FROM busybox AS a
COPY --from=b /x /x
FROM a AS b
# error: circular dependency detected on stage
