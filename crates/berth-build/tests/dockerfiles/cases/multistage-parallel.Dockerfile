FROM alpine AS a
RUN echo a > /a
FROM alpine AS b
RUN echo b > /b
FROM alpine AS c
RUN --mount=from=a,target=/mnt/a cp /mnt/a/a /c
FROM scratch
COPY --from=b /b /b
COPY --from=c /c /c
# expect: stages=0,1,2,3
# expect: levels=[[0,1],[2],[3]]
