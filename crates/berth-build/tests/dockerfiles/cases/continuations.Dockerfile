FROM busybox
RUN echo a \
# a comment inside the continuation
    b \

    c
RUN echo trailing-escaped\\
ENV X=1
# expect: run[0]=["/bin/sh","-c","echo a     b     c"]
# expect: run[1]=["/bin/sh","-c","echo trailing-escaped\\\\"]
# expect: warning=Empty continuation line
