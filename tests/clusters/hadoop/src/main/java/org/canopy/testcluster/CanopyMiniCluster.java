package org.canopy.testcluster;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.nodemanager.NodeManager;
import org.apache.hadoop.yarn.webapp.util.WebAppUtils;

/**
 * Starts one NameNode + one DataNode (MiniDFSCluster) and one ResourceManager + NodeManagers
 * (MiniYARNCluster) in this JVM, then writes the addresses they really bound to as JSON.
 *
 * <p>All configuration comes from core-site.xml, hdfs-site.xml, yarn-site.xml and
 * capacity-scheduler.xml found first on the classpath (tests/clusters/hadoop.py writes them).
 * Every address is configured with port 0 and bound to 127.0.0.1, so the kernel hands out the
 * ports and nothing can race for them; the JSON file is how the caller learns them.
 *
 * <p>Usage: {@code CanopyMiniCluster <work-dir> <details.json> [node-managers]}. The JVM exits
 * when its standard input reaches end of file, so a test run that dies cannot leave it behind.
 *
 * <p>Kerberos: with {@code -Dcanopy.kerberos=true} a MiniKdc (Apache Kerby) starts first, on
 * 127.0.0.1 and a free port, and writes the keytabs the site files already name:
 * {@code <work-dir>/kerberos/service.keytab} (canopy/localhost for every daemon, HTTP/localhost
 * for SPNEGO) and {@code client.keytab} (the user canopy). Only then is Hadoop's configuration
 * read, so UserGroupInformation sees the KDC's krb5.conf and the daemons log in from the keytab.
 */
public final class CanopyMiniCluster {

  private CanopyMiniCluster() {
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: CanopyMiniCluster <work-dir> <details.json> [node-managers]");
      System.exit(2);
    }
    File workDir = new File(args[0]).getAbsoluteFile();
    Path details = Path.of(args[1]).toAbsolutePath();
    int nodeManagers = args.length > 2 ? Integer.parseInt(args[2]) : 1;

    MiniDFSCluster dfs = null;
    MiniYARNCluster yarn = null;
    MiniKdc kdc = null;
    try {
      Map<String, Object> kerberos = new LinkedHashMap<>();
      if (Boolean.getBoolean("canopy.kerberos")) {
        kdc = startKdc(new File(workDir, "kerberos"), kerberos);
      }
      Configuration conf = new YarnConfiguration(new HdfsConfiguration());
      if (kdc != null) {
        // Log in before anything asks for the current user: with Kerberos on there is no
        // fallback to the OS user, and every daemon below then runs as this principal.
        UserGroupInformation.setConfiguration(conf);
        UserGroupInformation.loginUserFromKeytab(
            conf.get("dfs.namenode.kerberos.principal"), conf.get("dfs.namenode.keytab.file"));
      }

      dfs = new MiniDFSCluster.Builder(conf, new File(workDir, "dfs"))
          .numDataNodes(1)
          .format(true)
          .build();
      dfs.waitActive();

      // MiniYARNCluster keeps its NodeManager dirs under ./target/<name>; the caller runs us
      // with the work dir as current directory.
      Configuration yarnConf = new YarnConfiguration(conf);
      // NodeManager web UIs off: every webapp in one JVM shares Guice's static GuiceFilter
      // pipeline, and the NM's, started last, would answer the RM's /ws/v1/cluster with 404.
      yarn = new MiniYARNCluster("canopy", nodeManagers, 1, 1, false);
      yarn.init(yarnConf);
      yarn.start();
      if (!yarn.waitForNodeManagersToConnect(60_000)) {
        throw new IllegalStateException("NodeManagers did not register with the RM in 60 s");
      }

      Map<String, Object> described = describe(dfs, yarn, nodeManagers);
      described.putAll(kerberos);
      writeDetails(details, described);
      System.out.println("CANOPY-MINICLUSTER-READY " + details);
      System.out.flush();
    } catch (Throwable t) {
      t.printStackTrace();
      stopQuietly(dfs, yarn);
      stopKdc(kdc);
      System.exit(1);
    }

    waitForEndOfInput(System.in);
    System.out.println("CANOPY-MINICLUSTER-STOPPING (stdin closed)");
    stopQuietly(dfs, yarn);
    stopKdc(kdc);
    // Hadoop leaves non-daemon threads behind; exit explicitly.
    System.exit(0);
  }

  private static MiniKdc startKdc(File dir, Map<String, Object> out) throws Exception {
    if (!dir.isDirectory() && !dir.mkdirs()) {
      throw new IOException("cannot create " + dir);
    }
    Properties kdcConf = MiniKdc.createConf();
    kdcConf.setProperty(MiniKdc.KDC_BIND_ADDRESS, "127.0.0.1");
    kdcConf.setProperty(MiniKdc.KDC_PORT, "0");
    MiniKdc kdc = new MiniKdc(kdcConf, dir);
    kdc.start();
    // One service principal for every daemon: they share this JVM, and UserGroupInformation's
    // login user is static, so distinct principals per daemon would overwrite one another.
    kdc.createPrincipal(new File(dir, "service.keytab"), "canopy/localhost", "HTTP/localhost");
    kdc.createPrincipal(new File(dir, "client.keytab"), "canopy");
    out.put("kdc_realm", kdc.getRealm());
    out.put("kdc_address", "127.0.0.1:" + kdc.getPort());
    out.put("kdc_transport", kdcConf.getProperty(MiniKdc.TRANSPORT));
    out.put("client_principal", "canopy@" + kdc.getRealm());
    out.put("client_keytab", new File(dir, "client.keytab").getAbsolutePath());
    return kdc;
  }

  private static void stopKdc(MiniKdc kdc) {
    if (kdc != null) {
      try {
        kdc.stop();
      } catch (Throwable t) {
        System.err.println("stopping the KDC failed: " + t);
      }
    }
  }

  private static Map<String, Object> describe(
      MiniDFSCluster dfs, MiniYARNCluster yarn, int nodeManagers)
      throws IOException {
    Configuration yc = yarn.getConfig();
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("user", UserGroupInformation.getCurrentUser().getShortUserName());
    out.put("rm_webapp", WebAppUtils.getRMWebAppURLWithoutScheme(yc));
    out.put("rm_address", yc.get(YarnConfiguration.RM_ADDRESS));
    out.put("rm_scheduler_address", yc.get(YarnConfiguration.RM_SCHEDULER_ADDRESS));
    out.put("rm_resource_tracker_address", yc.get(YarnConfiguration.RM_RESOURCE_TRACKER_ADDRESS));
    out.put("rm_admin_address", yc.get(YarnConfiguration.RM_ADMIN_ADDRESS));
    out.put("nn_rpc", hostPort(dfs.getNameNode().getNameNodeAddress()));
    out.put("nn_http", hostPort(dfs.getNameNode().getHttpAddress()));
    List<String> dataNodes = new ArrayList<>();
    for (DataNode dn : dfs.getDataNodes()) {
      dataNodes.add(dn.getDatanodeId().getIpAddr() + ":" + dn.getInfoPort());
    }
    out.put("dn_http", dataNodes);
    List<String> nodeIds = new ArrayList<>();
    for (int i = 0; i < nodeManagers; i++) {
      NodeManager nm = yarn.getNodeManager(i);
      nodeIds.add(nm.getNMContext().getNodeId().toString());
    }
    out.put("node_ids", nodeIds);
    return out;
  }

  private static String hostPort(InetSocketAddress address) {
    return address.getAddress().getHostAddress() + ":" + address.getPort();
  }

  /** Writes a flat JSON object (strings and string lists only) via rename, so readers never see half a file. */
  private static void writeDetails(Path target, Map<String, Object> values) throws IOException {
    StringBuilder json = new StringBuilder("{\n");
    int n = 0;
    for (Map.Entry<String, Object> e : values.entrySet()) {
      json.append("  ").append(quote(e.getKey())).append(": ");
      if (e.getValue() instanceof List) {
        List<String> items = new ArrayList<>();
        for (Object item : (List<?>) e.getValue()) {
          items.add(quote(String.valueOf(item)));
        }
        json.append('[').append(String.join(", ", items)).append(']');
      } else {
        json.append(quote(String.valueOf(e.getValue())));
      }
      json.append(++n < values.size() ? ",\n" : "\n");
    }
    json.append("}\n");
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    Files.writeString(tmp, json.toString(), StandardCharsets.UTF_8);
    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }

  private static void waitForEndOfInput(InputStream in) {
    byte[] buffer = new byte[256];
    try {
      while (in.read(buffer) >= 0) {
        // Input is only a lifeline to the parent process; its content is ignored.
      }
    } catch (IOException e) {
      // A broken stdin means the parent is gone too.
    }
  }

  private static void stopQuietly(MiniDFSCluster dfs, MiniYARNCluster yarn) {
    if (yarn != null) {
      try {
        yarn.stop();
      } catch (Throwable t) {
        System.err.println("stopping YARN failed: " + t);
      }
    }
    if (dfs != null) {
      try {
        dfs.shutdown();
      } catch (Throwable t) {
        System.err.println("stopping HDFS failed: " + t);
      }
    }
  }
}
