ARG BASE=busybox
ARG TAG=${BASE_TAG:-1.36}
ARG FULL=$BASE:$TAG
FROM ${FULL} AS one
ARG FULL
ARG UNSET
ARG EMPTY=
ENV A=a B="b c" C='$A' D="$A" E=\$A F=${UNSET:-dflt} G=${EMPTY-set-but-empty} H=${A:+alt} I=${A+alt2}
ENV PATHY=/usr/local/bin/tool.tar.gz
ENV J=${PATHY#*/} K=${PATHY##*/} L=${PATHY%.*} M=${PATHY%%.*} N=${PATHY/tool/TOOL} O=${PATHY//o/0}
WORKDIR /${FULL}/$A
LABEL "quoted key"="v" k${A}=${B}
# expect: config.Env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=a","B=b c","C=$A","D=a","E=$A","F=dflt","G=","H=alt","I=alt2","PATHY=/usr/local/bin/tool.tar.gz","J=usr/local/bin/tool.tar.gz","K=tool.tar.gz","L=/usr/local/bin/tool.tar","M=/usr/local/bin/tool","N=/usr/local/bin/TOOL.tar.gz","O=/usr/l0cal/bin/t00l.tar.gz"]
# expect: config.WorkingDir="/busybox:1.36/a"
# expect: config.Labels={"ka":"b c","quoted key":"v"}
# expect: base=busybox:1.36
