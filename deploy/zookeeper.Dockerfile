# ZooKeeper for the compose cluster: Debian's ZooKeeper (the server's jar,
# libzookeeper-java) on a headless JRE, standalone, run as the unprivileged
# user zookeeper. Build with deploy/docker-build.sh (it makes the base image
# first).
FROM vltava-base:bookworm
ENV DEBIAN_FRONTEND=noninteractive

# The JRE's postinst links manual pages into /usr/share/man/man1, which the
# slim base leaves out.
COPY deploy/install-deps.sh deploy/zookeeper-lib.sh /opt/vltava/
RUN mkdir -p /usr/share/man/man1 \
    && bash /opt/vltava/install-deps.sh zookeeper \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid and gid, so the data volume stays writable by the user of a
# rebuilt image.
RUN groupadd --system --gid 10002 zookeeper \
    && useradd --system --uid 10002 --gid zookeeper --home-dir /var/lib/vltava-zookeeper --no-create-home \
               --shell /usr/sbin/nologin zookeeper \
    && install -d -o zookeeper -g zookeeper -m 0750 /var/lib/vltava-zookeeper \
    && printf '%s\n' tickTime=2000 dataDir=/var/lib/vltava-zookeeper clientPort=2181 \
           admin.enableServer=false maxClientCnxns=0 4lw.commands.whitelist=ruok,srvr,stat,mntr \
           >/opt/vltava/zoo.cfg

USER zookeeper:zookeeper
WORKDIR /var/lib/vltava-zookeeper
EXPOSE 2181
# zookeeper-lib.sh knows the server's command line (zk_command) and its
# liveness probe (zk_ok, used by docker-compose.yml's healthcheck).
CMD ["bash", "-c", ". /opt/vltava/zookeeper-lib.sh && zk_command /opt/vltava/zoo.cfg && exec \"${ZK_COMMAND[@]}\""]
