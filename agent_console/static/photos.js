/* Photo inputs (walk-in desk, department inbox): shows a thumbnail of each chosen photo,
 * and shrinks large camera photos (longest side 2560 px, JPEG) before upload so that a few
 * tablet photos fit in one request over a mobile connection. Whatever the browser cannot
 * decode (e.g. HEIC) is sent as it is; the server checks every file's content anyway.
 */
(function () {
  "use strict";
  var MAX_SIDE = 2560;
  var SHRINK_ABOVE = 1.5 * 1024 * 1024;

  function preview(input, files) {
    var list = document.getElementById(input.dataset.preview);
    if (!list) { return; }
    list.replaceChildren();
    Array.prototype.forEach.call(files, function (file) {
      var item = document.createElement("li");
      if (file.type.indexOf("image/") === 0) {
        var img = document.createElement("img");
        img.alt = file.name;
        img.src = URL.createObjectURL(file);
        item.appendChild(img);
      }
      var caption = document.createElement("small");
      caption.textContent = file.name + " · " + Math.round(file.size / 1024) + " KB";
      item.appendChild(caption);
      list.appendChild(item);
    });
  }

  function shrink(file) {
    return new Promise(function (resolve) {
      if (file.size < SHRINK_ABOVE || !/^image\/(jpeg|png|webp)$/.test(file.type)) { resolve(file); return; }
      var img = new Image();
      var url = URL.createObjectURL(file);
      img.onload = function () {
        URL.revokeObjectURL(url);
        var scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(img.naturalWidth * scale);
        canvas.height = Math.round(img.naturalHeight * scale);
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) {
          if (!blob || blob.size >= file.size) { resolve(file); return; }
          var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
          resolve(new File([blob], name, { type: "image/jpeg", lastModified: file.lastModified }));
        }, "image/jpeg", 0.85);
      };
      img.onerror = function () { URL.revokeObjectURL(url); resolve(file); };
      img.src = url;
    });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-preview]")) { return; }
    var original = Array.prototype.slice.call(input.files || []);
    Promise.all(original.map(shrink)).then(function (files) {
      var changed = files.some(function (f, i) { return f !== original[i]; });
      if (changed && typeof DataTransfer === "function") {
        try {
          var transfer = new DataTransfer();
          files.forEach(function (f) { transfer.items.add(f); });
          input.files = transfer.files;
        } catch (e) { files = original; }
      }
      preview(input, input.files || files);
    });
  });
})();
